"""Goldens for whole graphs (issue 24): small torch modules with the structures of real CNNs, exported to
ONNX, run by onnxruntime with every intermediate tensor.

Run:  /work/venv/bin/python xtask/oracle/graph_golden.py crates/onnx/tests/golden/graphs

Each module (a ResNet basic block with downsample, a MobileNetV2 inverted residual, a MobileNetV3 block with
HardSwish and a HardSigmoid squeeze-and-excitation, an EfficientNet-style SiLU + Sigmoid SE block, a
DenseNet dense block and transition (Concat, BatchNorm after a Concat), a ShuffleNetV2 unit of each stride
(Split, channel shuffle), a ConvNeXt block (Transpose, LayerNormalization, GELU as Erf, layer scale), a
GoogLeNet inception (four-way Concat, MaxPool ceil_mode), a SqueezeNet fire, a classifier head (ReduceMean
as `x.mean([2, 3])`, Gemm, Softmax)) has random weights and randomised BatchNorm statistics, is exported by
`torch.onnx.export(dynamo=False, opset 17)` as NAME.onnx, and run by onnxruntime (CPU, float32) on a batch
of two. NAME.npz holds the input `x` and every tensor any node writes, keyed `t000`, `t001`, ... in graph
order; graphs.json lists per model the tensors' names, keys and shapes, and the oracles' versions.
Truth: onnxruntime; torch's own forward is compared with onnxruntime's output (the export is the model).
"""

import json
import os
import sys

import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch
import torch.nn as nn
import torchvision
from onnx import helper
from torchvision.models import convnext, densenet, mobilenetv2, mobilenetv3, resnet, shufflenetv2, squeezenet
from torchvision.models.googlenet import Inception
from torchvision.ops import SqueezeExcitation

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/onnx/tests/golden/graphs"


def randomise(m, seed):
    """Random weights (torch's init, seeded) and BatchNorm statistics far from the identity."""
    g = torch.Generator().manual_seed(seed)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.5)
            mod.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.3)
        if isinstance(mod, nn.LayerNorm):
            mod.weight.data.copy_(torch.rand(mod.weight.shape, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(mod.bias.shape, generator=g) * 0.3)
    return m.eval()


class SiluSe(nn.Module):
    """EfficientNet's pattern: conv, SiLU, squeeze-and-excitation (SiLU, Sigmoid), conv, HardSwish, residual."""

    def __init__(self, c):
        super().__init__()
        self.expand = nn.Conv2d(c, 2 * c, 1)
        self.act = nn.SiLU()
        self.se = SqueezeExcitation(2 * c, c // 2, activation=nn.SiLU, scale_activation=nn.Sigmoid)
        self.project = nn.Conv2d(2 * c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.hs = nn.Hardswish()

    def forward(self, x):
        return self.hs(self.bn(self.project(self.se(self.act(self.expand(x)))))) + x


class Dense(nn.Module):
    """DenseNet: a dense block of two layers, then a transition (BatchNorm after the Concat, AvgPool)."""

    def __init__(self):
        super().__init__()
        self.block = densenet._DenseBlock(num_layers=2, num_input_features=4, bn_size=2, growth_rate=4, drop_rate=0)
        self.trans = densenet._Transition(12, 6)

    def forward(self, x):
        return self.trans(self.block(x))


class Head(nn.Module):
    """A classifier head as MnasNet and the dynamo exporter write it: x.mean([2, 3]), Linear, Softmax."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 5)

    def forward(self, x):
        x = torch.relu(self.bn(self.conv(x))).mean([2, 3])
        return torch.softmax(self.fc(x), dim=1)


class Pooled(nn.Module):
    """VGG / SqueezeNet tails: MaxPool, GlobalAveragePool (adaptive 1x1), Flatten, Linear, LeakyRelu, Tanh."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.pool = nn.MaxPool2d(3, 2, padding=1)
        self.gap = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(6, 4)

    def forward(self, x):
        x = self.pool(nn.functional.leaky_relu(self.conv(x), 0.1))
        return torch.tanh(self.fc(torch.flatten(self.gap(x), 1)))


def models():
    # (name, module, input shape of one sample)
    down = nn.Sequential(nn.Conv2d(4, 8, 1, stride=2, bias=False), nn.BatchNorm2d(8))
    cn = convnext.CNBlock(4, layer_scale=0.5, stochastic_depth_prob=0.0)
    return [
        ("resnet_basic", resnet.BasicBlock(4, 8, stride=2, downsample=down), (4, 6, 6)),
        ("mobilenetv2_block", mobilenetv2.InvertedResidual(4, 4, stride=1, expand_ratio=3), (4, 6, 6)),
        ("mobilenetv3_block", mobilenetv3.InvertedResidual(
            mobilenetv3.InvertedResidualConfig(8, 3, 16, 8, True, "HS", 1, 1, 1.0), nn.BatchNorm2d), (8, 4, 4)),
        ("silu_se", SiluSe(4), (4, 5, 5)),
        ("densenet_block", Dense(), (4, 6, 6)),
        ("shufflenet_unit", shufflenetv2.InvertedResidual(8, 8, 1), (8, 5, 5)),
        ("shufflenet_down", shufflenetv2.InvertedResidual(4, 8, 2), (4, 6, 6)),
        ("convnext_block", nn.Sequential(cn, convnext.LayerNorm2d(4)), (4, 5, 5)),
        ("inception", Inception(4, 2, 2, 4, 2, 2, 2), (4, 5, 5)),
        ("squeezenet_fire", squeezenet.Fire(4, 2, 3, 3), (4, 6, 6)),
        ("head", Head(), (4, 8, 8)),
        ("pooled", Pooled(), (4, 7, 7)),
        ("convtranspose_output_shape", convtranspose_output_shape(), (1, 3, 3)),
    ]


def convtranspose_output_shape():
    """ONNX's conformance case test_convtranspose_output_shape (input 3x3, strides 3,2, kernel 3x3,
    output_shape 10x8: negative total padding, zeros after the full output), on a batch dimension N."""
    w = np.ones((1, 2, 3, 3), np.float32)
    node = helper.make_node("ConvTranspose", ["x", "W"], ["y"], name="convT", strides=[3, 2], output_shape=[10, 8])
    g = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 1, 3, 3])],
                          [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
                          initializer=[onnx.numpy_helper.from_array(w, "W")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(24)
    listing = {}
    for k, (name, module, shape) in enumerate(models()):
        torch.manual_seed(100 + k)
        x = rng.standard_normal((2, *shape)).astype(np.float32)
        if isinstance(module, onnx.ModelProto):
            m = None
        else:
            for p in module.parameters():
                p.data.copy_(torch.randn(p.shape) * 0.4)
            m = randomise(module, 200 + k)
        path = os.path.join(OUT, f"{name}.onnx")
        if name == "convtranspose_output_shape":
            onnx.save(module, path)
        else:
            # resnet_basic keeps its BatchNorms (no constant folding): convmat folds them
            torch.onnx.export(m, torch.from_numpy(x), path, dynamo=False, opset_version=17, input_names=["x"],
                              output_names=["y"], dynamic_axes={"x": {0: "N"}, "y": {0: "N"}},
                              do_constant_folding=name != "resnet_basic")
        model = onnx.load(path)
        # every tensor a node writes (not the constant subgraphs) becomes an output, in graph order
        names = []
        for node in model.graph.node:
            if node.op_type in ("Constant",):
                continue
            for o in node.output:
                if o and o not in names:
                    names.append(o)
        probe = onnx.load(path)
        have = {o.name for o in probe.graph.output}
        for n in names:
            if n not in have:
                probe.graph.output.append(helper.make_empty_tensor_value_info(n))
        sess = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
        outs = sess.run(names, {"x": x})
        y = outs[names.index("y")]
        if m is not None:
            with torch.no_grad():
                want = m(torch.from_numpy(x)).numpy()
            assert np.allclose(y, want, rtol=1e-4, atol=1e-5), (name, np.abs(y - want).max())
        arrays = {"x": x}
        tensors = []
        for i, (n, v) in enumerate(zip(names, outs)):
            v = np.asarray(v)
            if v.dtype != np.float32:  # shapes and indices of the folded subgraphs
                continue
            key = f"t{i:03d}"
            arrays[key] = v
            tensors.append({"name": n, "key": key, "shape": list(v.shape)})
        np.savez_compressed(os.path.join(OUT, f"{name}.npz"), **arrays)
        listing[name] = {"input_shape": list(shape), "batch": 2, "tensors": tensors,
                         "ops": sorted({n.op_type for n in model.graph.node})}
        print(f"{name}: {len(tensors)} tensors, ops {listing[name]['ops']}")
    with open(os.path.join(OUT, "graphs.json"), "w") as f:
        json.dump({"generator": "xtask/oracle/graph_golden.py", "onnx": onnx.__version__,
                   "onnxruntime": ort.__version__, "torch": torch.__version__,
                   "torchvision": torchvision.__version__, "models": listing}, f, indent=1)


if __name__ == "__main__":
    main()
