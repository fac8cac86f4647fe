"""Goldens for whole networks in fixed point (issue 28): small torch CNNs exported to ONNX, every layer
emulated in fixed point with apytypes, layer by layer, under each rounding x overflow.

Run:  /work/venv/bin/python xtask/oracle/fixed_net_golden.py crates/onnx/tests/golden/fixed

Models (random weights, seeded, BatchNorm statistics randomised; torch.onnx.export(dynamo=False, opset 17),
which folds each BatchNorm into its Conv in float32):
- cnn:      Conv-BN-ReLU-MaxPool-Conv-ReLU-Flatten-Gemm
- residual: Conv-BN-ReLU, then Conv-BN-ReLU-Conv-BN + the skip, ReLU, GlobalAveragePool, Flatten, Gemm

The emulation reads the exported ONNX (its initializers; onnxruntime checks the float interpretation) and
follows MATLAB fi semantics, every cast done by apytypes (APyFixedArray.cast from an exact wide value):
- the graph input is quantized to the "input" type (Nearest = apytypes RND, Saturate);
- a block's weights to its "weight" type (Nearest, Saturate: fi's constructor), its bias first to the
  "bias" type when one is given (Nearest, Saturate), then to the product's format (word w_w + w_x,
  fraction f_w + f_x; Nearest, Saturate);
- full precision: the exact sum (numpy int64 of stored integers, exact here), then the "result" cast with
  the rounding and overflow; a narrow "accumulator": starting from the bias cast into it, in tap order
  (input channel, kernel row, kernel column; a Gemm in column order), each product cast into it with the
  rounding and overflow, then each partial sum cast with the overflow;
- a Gemm is the 1x1 convolution of its matrix; GlobalAveragePool the depthwise convolution of 1/(H W);
- Relu and MaxPool on stored values; Add: the exact sum in the longer fraction with one more integer bit
  than the wider operand; Flatten keeps the values.
Overflow counts per output channel: products whose cast overflowed, accumulations (outputs) in which the
bias' cast or any partial sum overflowed, results whose cast overflowed ("overflowed": the cast differs
from the same rounding into a format 64 bits wider).

Writes MODEL.onnx, MODEL_x.npy (the input batch) and MODEL.json: per configuration the formats file and,
per block (by node name), the result's format, its stored integers and the per-channel counts.
"""

import json
import os
import sys

import apytypes
import numpy as np
import onnx
import onnx.numpy_helper
import onnxruntime as ort
import torch
import torch.nn as nn
from apytypes import APyFixedArray, OverflowMode, QuantizationMode

OUT = sys.argv[1] if len(sys.argv) > 1 else "crates/onnx/tests/golden/fixed"

ROUNDINGS = {"nearest": QuantizationMode.RND, "floor": QuantizationMode.TRN, "convergent": QuantizationMode.RND_CONV}
OVERFLOWS = {"saturate": OverflowMode.SAT, "wrap": OverflowMode.WRAP}


def qfmt(text):
    """'q3.5' -> (int_bits, frac_bits)."""
    i, f = text[1:].split(".")
    return int(i), int(f)


def exact(ints, frac):
    """Stored integers (int64, |v| < 2^52) of fraction `frac` as an exact 64-bit APyFixedArray.

    64 bits, not more: apytypes 0.5.1 casts a source wider than 64 bits with WRAP into a narrow format
    without sign-extending the result (5.0 from a 70-bit source cast to int_bits=3, frac_bits=5 stays 5.0;
    from a 64-bit source it wraps to -3.0, as MATLAB and Vitis do)."""
    return APyFixedArray.from_float(np.asarray(ints, dtype=np.float64) * 2.0**-frac, bits=64, frac_bits=frac)


def from_real(v):
    """Float64 values as an exact wide APyFixedArray (float32-born values: 24-bit mantissas)."""
    return APyFixedArray.from_float(np.asarray(v, dtype=np.float64), int_bits=24, frac_bits=120)


def stored(a):
    """An APyFixedArray's stored integers (as int64; every format here is below 53 bits)."""
    return np.round(np.asarray(a.to_numpy(), dtype=np.float64) * 2.0**a.frac_bits).astype(np.int64)


def cast(a, fmt, q, o):
    """Cast to fmt (int_bits, frac_bits) with q, o; and which elements overflowed."""
    i, f = fmt
    y = a.cast(int_bits=i, frac_bits=f, quantization=q, overflow=o)
    wide = a.cast(int_bits=i + 64, frac_bits=f, quantization=q, overflow=OverflowMode.SAT)
    return stored(y), stored(y) != stored(wide)


class Emulator:
    def __init__(self, model, formats, rounding, overflow):
        self.g = model.graph
        self.init = {t.name: onnx.numpy_helper.to_array(t).astype(np.float64) for t in self.g.initializer}
        self.formats = formats
        self.q, self.o = ROUNDINGS[rounding], OVERFLOWS[overflow]
        self.layers = {}

    def types(self, node):
        t = dict(self.formats.get("default", {}))
        t.update(self.formats["layers"].get(node.name, {}))
        return t

    def quantize_real(self, v, fmt):
        s, _ = cast(from_real(v), qfmt(fmt), QuantizationMode.RND, OverflowMode.SAT)
        return s

    def conv(self, node, x, fx, w, b, stride, pads, groups):
        """x: stored (N, C, H, W) of fraction fx; w, b real. Returns stored result, its format, counts."""
        t = self.types(node)
        wi, wf = qfmt(t["weight"])
        wq, ov = cast(from_real(w), (wi, wf), QuantizationMode.RND, OverflowMode.SAT)
        assert not ov.any(), f"{node.name}: weights beyond {t['weight']} (max |w| {np.abs(w).max()})"
        xi_bits = self.in_bits
        pw, pf = wi + wf + xi_bits, wf + fx  # product word and fraction
        cout, cin_g, kh, kw = w.shape
        if b is not None:
            if "bias" in t:
                bi, bf = qfmt(t["bias"])
                b = self.quantize_real(b, t["bias"]) * 2.0**-bf
            bq, _ = cast(from_real(b), (pw - pf, pf), QuantizationMode.RND, OverflowMode.SAT)
        n, c, h, wd = x.shape
        xp = np.zeros((n, c, h + pads[0] + pads[2], wd + pads[1] + pads[3]), dtype=np.int64)
        xp[:, :, pads[0] : pads[0] + h, pads[1] : pads[1] + wd] = x
        ho = (h + pads[0] + pads[2] - kh) // stride[0] + 1
        wo = (wd + pads[1] + pads[3] - kw) // stride[1] + 1
        cout_g = cout // groups
        taps = []  # per output channel group: (tap order) list of (weights (cout,), input planes (n, cout, ho, wo))
        for cl in range(cin_g):
            for r in range(kh):
                for s in range(kw):
                    ci = np.array([(co // cout_g) * cin_g + cl for co in range(cout)])
                    xs = xp[:, ci, r : r + stride[0] * ho : stride[0], s : s + stride[1] * wo : stride[1]]
                    taps.append((wq[:, cl, r, s][None, :, None, None], xs))
        counts = {"products": np.zeros(cout, np.int64), "accumulators": np.zeros(cout, np.int64)}
        if "accumulator" not in t:
            acc = sum(wv * xs for wv, xs in taps)
            if b is not None:
                acc = acc + bq[None, :, None, None]
            # the full-precision accumulator: the product's word grown by ceil(log2(terms)), a bias one term
            terms = cin_g * kh * kw + (b is not None)
            grow = int(np.ceil(np.log2(terms))) if terms > 1 else 0
            ai, af = pw + grow - pf, pf
        else:
            ai, af = qfmt(t["accumulator"])
            shape = (n, cout, ho, wo)
            flag = np.zeros(shape, dtype=bool)
            if b is not None:
                acc, ov = cast(exact(np.broadcast_to(bq[None, :, None, None], shape).copy(), pf), (ai, af), self.q, self.o)
                flag |= ov
            else:
                acc = np.zeros(shape, np.int64)
            for wv, xs in taps:
                p, ov = cast(exact(wv * xs, pf), (ai, af), self.q, self.o)
                counts["products"] += ov.sum(axis=(0, 2, 3))
                s = exact(acc + p, af)
                acc, ov = cast(s, (ai, af), self.q, self.o)
                flag |= ov
            counts["accumulators"] = flag.sum(axis=(0, 2, 3))
        if "result" in t:
            ri, rf = qfmt(t["result"])
            y, ov = cast(exact(acc, af), (ri, rf), self.q, self.o)
            counts["results"] = ov.sum(axis=(0, 2, 3))
            fmt = (ri, rf)
        else:
            y = acc
            counts["results"] = np.zeros(cout, np.int64)
            fmt = (ai, af)
        return y, fmt, counts

    def run(self, x_real):
        fin = self.formats["input"]
        ii, fi = qfmt(fin)
        vals = {self.g.input[0].name: (self.quantize_real(x_real, fin), (ii, fi))}
        nodes = list(self.g.node)
        k = 0
        while k < len(nodes):
            node = nodes[k]
            op = node.op_type
            a = {at.name: onnx.helper.get_attribute_value(at) for at in node.attribute}
            x, (xi, xf) = vals[node.input[0]]
            self.in_bits = xi + xf
            if op in ("Conv", "Gemm", "GlobalAveragePool"):
                if op == "Conv":
                    w = self.init[node.input[1]]
                    b = self.init[node.input[2]] if len(node.input) > 2 else None
                    st, pads, groups = a.get("strides", [1, 1]), a.get("pads", [0, 0, 0, 0]), a.get("group", 1)
                    y, fmt, counts = self.conv(node, x, xf, w, b, st, pads, groups)
                elif op == "GlobalAveragePool":
                    n, c, h, wd = x.shape
                    w = np.full((c, 1, h, wd), 1.0 / (h * wd))
                    y, fmt, counts = self.conv(node, x, xf, w, None, [1, 1], [0, 0, 0, 0], c)
                else:
                    assert a.get("transB", 0) == 1 and a.get("alpha", 1.0) == 1.0 and a.get("beta", 1.0) == 1.0
                    w = self.init[node.input[1]]
                    b = self.init[node.input[2]]
                    y, fmt, counts = self.conv(node, x.reshape(x.shape[0], -1, 1, 1), xf, w[:, :, None, None], b, [1, 1], [0] * 4, 1)
                    y = y.reshape(y.shape[0], -1)
                self.layers[node.name] = {
                    "format": f"q{fmt[0]}.{fmt[1]}",
                    "stored": y.ravel().tolist(),
                    "products": counts["products"].tolist(),
                    "accumulators": counts["accumulators"].tolist(),
                    "results": counts["results"].tolist(),
                }
                vals[node.output[0]] = (y, fmt)
            elif op == "Relu":
                vals[node.output[0]] = (np.maximum(x, 0), (xi, xf))
            elif op == "MaxPool":
                kh, kw = a["kernel_shape"]
                sh, sw = a.get("strides", [1, 1])
                assert a.get("pads", [0, 0, 0, 0]) == [0, 0, 0, 0]
                n, c, h, wd = x.shape
                ho, wo = (h - kh) // sh + 1, (wd - kw) // sw + 1
                y = np.full((n, c, ho, wo), np.iinfo(np.int64).min)
                for r in range(kh):
                    for s in range(kw):
                        y = np.maximum(y, x[:, :, r : r + sh * ho : sh, s : s + sw * wo : sw])
                vals[node.output[0]] = (y, (xi, xf))
            elif op == "Flatten":
                vals[node.output[0]] = (x.reshape(x.shape[0], -1), (xi, xf))
            elif op == "Add":
                z, (zi, zf) = vals[node.input[1]]
                f = max(xf, zf)
                i = max(xi, zi) + 1
                vals[node.output[0]] = (x * 2 ** (f - xf) + z * 2 ** (f - zf), (i, f))
            else:
                raise SystemExit(f"the emulator does not know {op} ({node.name})")
            k += 1
        out = self.g.output[0].name
        y, (yi, yf) = vals[out]
        return y, (yi, yf)


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 3 * 3, 5)

    def forward(self, x):
        x = self.pool(torch.relu(self.bn1(self.conv1(x))))
        x = torch.relu(self.conv2(x))
        return self.fc(torch.flatten(x, 1))


class Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(4)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 5)

    def forward(self, x):
        h = torch.relu(self.bn0(self.stem(x)))
        y = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(h)))))
        y = torch.relu(y + h)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(y, 1), 1))


def randomise(m, seed):
    g = torch.Generator().manual_seed(seed)
    for p in m.parameters():
        p.data.copy_(torch.randn(p.shape, generator=g) * 0.4)
    for mod in m.modules():
        if isinstance(mod, nn.BatchNorm2d):
            c = mod.num_features
            mod.running_mean.copy_(torch.randn(c, generator=g) * 0.3)
            mod.running_var.copy_(torch.rand(c, generator=g) * 1.0 + 0.5)
            mod.weight.data.copy_(torch.rand(c, generator=g) + 0.5)
            mod.bias.data.copy_(torch.randn(c, generator=g) * 0.3)
    return m.eval()


def block_names(model):
    return [n.name for n in model.graph.node if n.op_type in ("Conv", "Gemm", "GlobalAveragePool")]


def configs(model):
    """Per rounding x overflow: the formats; blocks alternate narrow and full-precision accumulators."""
    names = block_names(model)
    out = []
    for r in ROUNDINGS:
        for o in OVERFLOWS:
            layers = {}
            for k, name in enumerate(names):
                e = {}
                if name.endswith("GlobalAveragePool"):
                    e["weight"] = "q1.9"
                if k % 2 == 0:
                    e["accumulator"] = "q4.7" if k == 0 else "q2.8"
                if k == 0:
                    e["bias"] = "q3.5"
                layers[name] = e
            out.append(
                {
                    "input": "q2.6",
                    "default": {"weight": "q2.6", "result": "q3.5", "rounding": r, "overflow": o},
                    "layers": layers,
                }
            )
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {
        "torch": torch.__version__,
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "apytypes": apytypes.__version__,
        "numpy": np.__version__,
    }
    for name, module, seed in [("cnn", Cnn(), 1), ("residual", Residual(), 2)]:
        m = randomise(module, seed)
        g = torch.Generator().manual_seed(seed + 100)
        x = (torch.rand((2, 3, 6, 6), generator=g) * 4.4 - 2.2).float()
        path = os.path.join(OUT, f"{name}.onnx")
        torch.onnx.export(m, x, path, dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])
        np.save(os.path.join(OUT, f"{name}_x.npy"), x.numpy())
        model = onnx.load(path)
        ref = ort.InferenceSession(path, providers=["CPUExecutionProvider"]).run(None, {"x": x.numpy()})[0]
        assert np.allclose(ref, m(x).detach().numpy(), atol=1e-5)
        cases = []
        for fmts in configs(model):
            em = Emulator(model, fmts, fmts["default"]["rounding"], fmts["default"]["overflow"])
            y, (yi, yf) = em.run(x.numpy().astype(np.float64))
            cases.append({"formats": fmts, "layers": em.layers, "output": y.ravel().tolist(), "output_format": f"q{yi}.{yf}"})
        doc = {
            "oracle": "xtask/oracle/fixed_net_golden.py: apytypes casts layer by layer (see its docstring)",
            "versions": versions,
            "model": f"{name}.onnx",
            "input": f"{name}_x.npy",
            "cases": cases,
        }
        with open(os.path.join(OUT, f"{name}.json"), "w") as f:
            json.dump(doc, f, separators=(",", ":"))
            f.write("\n")
        total = {k: sum(sum(v[k]) for c in cases for v in c["layers"].values()) for k in ("products", "accumulators", "results")}
        print(name, "blocks", block_names(model), "overflows over all cases", total)


if __name__ == "__main__":
    main()
