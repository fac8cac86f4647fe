"""Oracle for `convmat svd --weights MODEL.onnx` (the whole-network view): each affine block's spectral
norm from its matrix as onnxruntime computes it (the block's subgraph, cut out with onnx.utils.extract_model,
run on the identity basis minus its value at zero), by numpy's SVD. Independent of convmat.

Writes crates/onnx/tests/golden/network_norms.json. Run from the repository root:
    /work/venv/bin/python xtask/oracle/network_norms.py
"""

import json
import os
import tempfile

import numpy as np
import onnx
import onnx.utils
import onnxruntime as ort

GOLDEN = os.path.join("crates", "onnx", "tests", "golden")

# (model, [(main node, block input value, block output value)]): the blocks as convmat cuts them
# (BatchNormalization after a Conv / ConvTranspose / Gemm folded in; nonlinearities between blocks)
MODELS = {
    "torch_cnn": ([1, 12, 12], [
        ("/conv1/Conv", "x", "/conv1/Conv_output_0"),
        ("/conv2/Conv", "/MaxPool_output_0", "/conv2/Conv_output_0"),
        ("/fc1/Gemm", "/Relu_1_output_0", "/bn3/BatchNormalization_output_0"),
        ("/fc2/Gemm", "/Relu_2_output_0", "y"),
    ]),
    # convolutions above convmat's dense limit (4M entries): certified matrix-free, BatchNorm folded into the
    # weights (exported in training mode so that BatchNormalization stays a node of its own)
    "torch_wide": ([4, 24, 24], [
        ("/conv1/Conv", "x", "/bn1/BatchNormalization_output_0"),
        ("/conv2/Conv", "/Relu_output_0", "/bn2/BatchNormalization_output_0"),
        ("/fc/Gemm", "/Flatten_output_0", "y"),
    ]),
    "torch_transpose": ([2, 7, 7], [
        ("/conv/Conv", "x", "/conv/Conv_output_0"),
        ("/up/ConvTranspose", "/Tanh_output_0", "/bn/BatchNormalization_output_0"),
        ("/pool/AveragePool", "/bn/BatchNormalization_output_0", "y"),
    ]),
}


def shapes(path, input_shape, names):
    """The shapes (one sample) of the float values `names`, by running the model once with them as outputs."""
    m = onnx.load(path)
    names = [v for v in names if v not in ("x", "y")]
    m.graph.output.extend(onnx.helper.make_tensor_value_info(v, onnx.TensorProto.FLOAT, None) for v in names)
    s = ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"])
    outs = s.run(None, {"x": np.zeros([1, *input_shape], np.float32)})
    return {o.name: list(v.shape[1:]) for o, v in zip(s.get_outputs(), outs)} | {"x": list(input_shape)}


def block_matrix(path, value_in, value_out, shape_in):
    with tempfile.TemporaryDirectory() as d:
        sub = os.path.join(d, "block.onnx")
        onnx.utils.extract_model(path, sub, [value_in], [value_out])
        s = ort.InferenceSession(sub, providers=["CPUExecutionProvider"])
        n = int(np.prod(shape_in))
        # float32 is what the model runs in; the basis columns are exact, the products rounded to 1e-7
        basis = np.eye(n, dtype=np.float32).reshape(n, *shape_in)
        zero = np.zeros([1, *shape_in], np.float32)
        cols = s.run(None, {value_in: basis})[0].reshape(n, -1) - s.run(None, {value_in: zero})[0].reshape(1, -1)
        return cols.T.astype(np.float64)


def export_wide(path):
    """A CNN whose two convolutions are larger than convmat's dense limit, BatchNorm kept as nodes."""
    import torch

    torch.manual_seed(18)

    class Wide(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv1 = torch.nn.Conv2d(4, 8, 3, padding=1)
            self.bn1 = torch.nn.BatchNorm2d(8)
            self.conv2 = torch.nn.Conv2d(8, 8, 3, padding=1)
            self.bn2 = torch.nn.BatchNorm2d(8)
            self.fc = torch.nn.Linear(8 * 6 * 6, 10)

        def forward(self, x):
            x = torch.relu(self.bn1(self.conv1(x)))
            x = torch.relu(self.bn2(self.conv2(x)))
            x = torch.nn.functional.max_pool2d(x, 4)
            return self.fc(torch.flatten(x, 1))

    net = Wide()
    g = torch.Generator().manual_seed(5)
    for bn in (net.bn1, net.bn2):
        bn.running_mean.copy_(torch.randn(8, generator=g) * 0.3)
        bn.running_var.copy_(torch.rand(8, generator=g) + 0.5)
        bn.weight.data.copy_(torch.randn(8, generator=g))
    net.eval()
    torch.onnx.export(net, torch.randn(1, 4, 24, 24), path, dynamo=False, input_names=["x"], output_names=["y"],
                      dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)


def main():
    out = {}
    export_wide(os.path.join(GOLDEN, "torch_wide.onnx"))
    for name, (input_shape, blocks) in MODELS.items():
        path = os.path.join(GOLDEN, f"{name}.onnx")
        sh = shapes(path, input_shape, [b[1] for b in blocks])
        rows = []
        for node, vin, vout in blocks:
            a = block_matrix(path, vin, vout, sh[vin])
            rows.append({"name": node, "rows": a.shape[0], "cols": a.shape[1],
                         "sigma1": float(np.linalg.svd(a, compute_uv=False)[0])})
        out[name] = {"input_shape": input_shape, "blocks": rows,
                     "product": float(np.prod([r["sigma1"] for r in rows]))}
    with open(os.path.join(GOLDEN, "network_norms.json"), "w") as f:
        json.dump(out, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
