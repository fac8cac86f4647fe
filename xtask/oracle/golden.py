"""Oracle for convmat's golden files: reads tests/golden/catalog.json, writes tests/golden/cases/<name>.json.

Every expected value comes from PyTorch (layers, unfold/fold, F.pad) or NumPy/SciPy (true convolution,
convmtx2), never from convmat. Inputs are seeded from the case name and are multiples of 1/8, so every
sum is exact in float64 and the Rust tests compare exactly. Run through `cargo xtask golden`.

usage: golden.py ROOT [NAME ...]
"""
import json
import os
import sys
import warnings
import zlib

import numpy as np
import scipy
import scipy.signal
import scipy.sparse
import torch
import torch.nn.functional as F
from torch import nn


def torch_version():
    return f"torch {torch.__version__.split('+')[0]}"


def scipy_version():
    return f"scipy {scipy.__version__}, numpy {np.__version__}"


def apytypes_version():
    import apytypes
    return f"apytypes {apytypes.__version__}, torch {torch.__version__.split('+')[0]} (im2col of stored integers)"


ORACLES = {
    "spectrum": lambda: f"numpy {np.__version__} (linalg.svd of the torch {torch.__version__.split('+')[0]} identity-basis matrix)",
    "fixed_conv": apytypes_version,
    "conv": torch_version,
    "unfold": torch_version,
    "shape_chain": torch_version,
    "true_conv": scipy_version,
    "convmtx2": scipy_version,
}


def rng_for(name):
    return np.random.default_rng(zlib.crc32(name.encode()))


def dyadic(rng, shape):
    """Multiples of 1/8 in [-1, 1]: exact sums in float64."""
    return rng.integers(-8, 9, size=shape).astype(np.float64) / 8


def flat(a):
    return [float(v) for v in np.asarray(a, dtype=np.float64).ravel()]


def per_dim(v, rank):
    return list(v) if isinstance(v, list) else [v] * rank


def explicit_pads(case, rank, spatial):
    """(begin, end) per dim for paddings PyTorch's modules cannot express (ONNX pads, SAME_UPPER/LOWER)."""
    k = per_dim(case["kernel_size"], rank)
    s = per_dim(case.get("stride", 1), rank)
    d = per_dim(case.get("dilation", 1), rank)
    if "pads" in case:
        p = case["pads"]
        return p[:rank], p[rank:]
    begin, end = [], []
    for n, kk, ss, dd in zip(spatial, k, s, d):
        # ONNX: output = ceil(n / s); total = max(0, (out - 1) * s + (k - 1) * d + 1 - n)
        out = -(-n // ss)
        total = max(0, (out - 1) * ss + (kk - 1) * dd + 1 - n)
        small = total // 2
        if case["padding"] == "same_upper":
            begin.append(small)
            end.append(total - small)
        else:
            begin.append(total - small)
            end.append(small)
    return begin, end


def make_layer(case):
    """A float64 function x (N, C, *spatial) -> y, the torch layer, and the case's generator."""
    rank = len(case["input"]) - 1
    cin, cout = case["in_channels"], case["out_channels"]
    transposed = case.get("transposed", False)
    mode = case.get("padding_mode", "zeros")
    kw = dict(stride=case.get("stride", 1), dilation=case.get("dilation", 1), groups=case.get("groups", 1),
              bias=case.get("bias", False))
    padding = case.get("padding", 0)
    needs_pad = "pads" in case or padding in ("same_upper", "same_lower")
    if transposed:
        cls = [nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d][rank - 1]
        layer = cls(cin, cout, case["kernel_size"], padding=padding, output_padding=case.get("output_padding", 0), **kw)
    else:
        cls = [nn.Conv1d, nn.Conv2d, nn.Conv3d][rank - 1]
        layer = cls(cin, cout, case["kernel_size"], padding=0 if needs_pad else padding, padding_mode=mode, **kw)
    layer = layer.double()
    rng = rng_for(case["name"])
    with torch.no_grad():
        layer.weight.copy_(torch.from_numpy(dyadic(rng, tuple(layer.weight.shape))))
        if layer.bias is not None:
            layer.bias.copy_(torch.from_numpy(dyadic(rng, tuple(layer.bias.shape))))

    def run(x):
        with torch.no_grad():
            if needs_pad:
                begin, end = explicit_pads(case, rank, case["input"][1:])
                pad = []
                for b, e in zip(reversed(begin), reversed(end)):
                    pad += [b, e]
                x = F.pad(x, pad, mode="constant" if mode == "zeros" else mode)
            return layer(x)

    return run, layer, rng


def conv_case(case):
    run, layer, rng = make_layer(case)
    shape = tuple(case["input"])
    probes = dyadic(rng, (3, *shape))
    y = run(torch.from_numpy(probes))
    out = {
        "weight": flat(layer.weight.detach()),
        "weight_shape": list(layer.weight.shape),
        "bias": flat(layer.bias.detach()) if layer.bias is not None else None,
        "x": [flat(p) for p in probes],
        "y": [flat(v) for v in y],
        "output_shape": list(y.shape[1:]),
    }
    if case.get("matrix", True):
        # column j of A is the layer (without bias) applied to the j-th basis vector
        n = int(np.prod(shape))
        eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
        cols = run(eye)
        if layer.bias is not None:
            cols = cols - layer.bias.detach().reshape(1, -1, *([1] * (len(shape) - 1)))
        a = scipy.sparse.csr_matrix(cols.reshape(n, -1).T.numpy())
        out["matrix"] = {"shape": list(a.shape), "indptr": a.indptr.tolist(), "indices": a.indices.tolist(),
                         "data": flat(a.data)}
    return out


def unfold_case(case):
    rng = rng_for(case["name"])
    c, h, w = case["input"]
    args = dict(kernel_size=case["kernel_size"], dilation=case["dilation"], padding=case["padding"],
                stride=case["stride"])
    x = torch.from_numpy(dyadic(rng, (2, c, h, w)))
    cols = F.unfold(x, **args)
    other = torch.from_numpy(dyadic(rng, tuple(cols.shape)))
    folded = F.fold(other, output_size=(h, w), **args)
    return {"x": flat(x), "cols_shape": list(cols.shape), "cols": flat(cols), "other": flat(other),
            "folded": flat(folded)}


def matlab_slice(full, kernel, shape):
    """MATLAB conv/conv2 shapes: 'same' is the central part starting at floor(k/2) of the full result
    (SciPy's 'same' centres differently for even kernels, so it is not used)."""
    if shape == "full":
        return full
    sl = []
    for n_full, k in zip(full.shape, kernel):
        n = n_full - k + 1
        if shape == "same":
            sl.append(slice(k // 2, k // 2 + n))
        else:  # valid
            sl.append(slice(k - 1, n_full - k + 1))
    return full[tuple(sl)]


def true_conv_case(case):
    rng = rng_for(case["name"])
    if "x" in case:
        x, h = np.array(case["x"], dtype=np.float64), np.array(case["h"], dtype=np.float64)
    else:
        x = dyadic(rng, tuple(case["input"]))
        h = dyadic(rng, tuple(case["kernel_size"]))
    full = scipy.signal.convolve(x, h, mode="full", method="direct")
    y = matlab_slice(full, h.shape, case["shape"])
    return {"x": flat(x), "x_shape": list(x.shape), "h": flat(h), "h_shape": list(h.shape), "y": flat(y),
            "y_shape": list(y.shape)}


def convmtx2_case(case):
    rng = rng_for(case["name"])
    h = dyadic(rng, tuple(case["kernel_size"]))
    m, n = case["m"], case["n"]
    cols = []
    for j in range(m * n):
        e = np.zeros((m, n))
        e[j % m, j // m] = 1.0  # the j-th element of X(:) (column-major)
        cols.append(scipy.signal.convolve2d(e, h, mode="full").ravel(order="F"))
    t = np.array(cols).T
    return {"h": flat(h), "h_shape": list(h.shape), "t_shape": list(t.shape), "t": flat(t)}


def shape_chain_case(case):
    x = torch.zeros((1, *case["input"]))
    outs, params = [], []
    for i, text in enumerate(case["layers"]):
        layer = eval("nn." + text, {"nn": nn})
        try:
            with torch.no_grad():
                x = layer(x)
        except Exception as e:  # noqa: BLE001 - any refusal counts
            assert case.get("expect_error"), (case["name"], e)
            return {"fails_at": i + 1, "torch_error": str(e).splitlines()[0][:200]}
        outs.append(list(x.shape[1:]))
        params.append(sum(p.numel() for p in layer.parameters()))
    assert not case.get("expect_error"), case["name"]
    return {"outputs": outs, "params": params}


QUANT = {"nearest": "RND", "round": "RND_INF", "convergent": "RND_CONV", "floor": "TRN", "ceil": "TRN_INF",
         "zero": "TRN_ZERO"}


def parse_q(text):
    """'q1.7' -> (int_bits, frac_bits); signed formats only in the catalog."""
    i, f = text[1:].split(".")
    return int(i), int(f)


def fixed_conv_case(case):
    """MATLAB fi semantics through apytypes: quantize (Nearest, Saturate), im2col of the stored integers
    (torch F.pad + F.unfold: a rearrangement, exact), full-precision matmul, bias in the product format,
    then the output cast; or a narrow accumulator re-cast after every product and sum, in tap order."""
    from apytypes import APyFixed, APyFixedArray, OverflowMode, QuantizationMode

    def quant(a, fmt, q="nearest", o="saturate"):
        i, f = fmt
        return APyFixedArray.from_float(np.asarray(a, dtype=np.float64), int_bits=12, frac_bits=52).cast(
            int_bits=i, frac_bits=f, quantization=getattr(QuantizationMode, QUANT[q]),
            overflow=OverflowMode.SAT if o == "saturate" else OverflowMode.WRAP)

    def raw(arr, frac):
        v = np.asarray(arr.to_numpy(), dtype=np.float64) * 2.0 ** frac
        assert np.all(np.abs(v) < 2 ** 53) and np.all(v == np.round(v))
        return [int(x) for x in v.ravel()]

    rng = rng_for(case["name"])
    rank = len(case["input"]) - 1
    cin, cout, g = case["in_channels"], case["out_channels"], case.get("groups", 1)
    k = per_dim(case["kernel_size"], rank)
    wshape = (cout, cin // g, *k)
    scale = case["scale"]
    w = rng.uniform(-scale, scale, wshape)
    b = rng.uniform(-scale, scale, cout) if case.get("bias") else None
    xs = rng.uniform(-scale, scale, (2, *case["input"]))
    wf, xf = parse_q(case["weight_format"]), parse_q(case["input_format"])
    W, X = quant(w, wf), quant(xs, xf)
    pf = (wf[0] + xf[0], wf[1] + xf[1])  # product format (int bits incl. sign, frac)
    w_raw = np.array(raw(W, wf[1]), dtype=np.float64).reshape(wshape)
    x_raw = np.array(raw(X, xf[1]), dtype=np.float64).reshape(xs.shape)
    out = {"weight": flat(w), "bias": flat(b) if b is not None else None, "x": [flat(v) for v in xs],
           "w_raw": raw(W, wf[1]), "x_raw": [raw(X, xf[1])[i * x_raw[0].size:(i + 1) * x_raw[0].size] for i in range(2)]}
    if b is not None:
        B = quant(b, pf)
        out["b_raw"] = raw(B, pf[1])
    # im2col of the stored integers, padded per the padding mode (exact in float64)
    pad = []
    p = per_dim(case.get("padding", 0), rank)
    for pp in reversed(p):
        pad += [pp, pp]
    mode = case.get("padding_mode", "zeros")
    xt = torch.from_numpy(x_raw)
    if rank == 1:
        xt = xt.unsqueeze(-1)
    if any(p):
        xt = F.pad(xt if rank == 2 else xt.squeeze(-1), pad, mode="constant" if mode == "zeros" else mode)
        if rank == 1:
            xt = xt.unsqueeze(-1)
    k2 = k if rank == 2 else [k[0], 1]
    st = per_dim(case.get("stride", 1), rank)
    dl = per_dim(case.get("dilation", 1), rank)
    st2 = st if rank == 2 else [st[0], 1]
    dl2 = dl if rank == 2 else [dl[0], 1]
    cols = F.unfold(xt, k2, dilation=dl2, stride=st2).numpy()  # (2, cin*K, L)
    K = int(np.prod(k))
    cin_g, cout_g = cin // g, cout // g
    if "acc_format" not in case:
        ys = []
        for n in range(2):
            blocks = []
            for gi in range(g):
                Wg = APyFixedArray.from_float(w_raw[gi * cout_g:(gi + 1) * cout_g].reshape(cout_g, cin_g * K) * 2.0 ** -wf[1],
                                              int_bits=wf[0], frac_bits=wf[1])
                Cg = APyFixedArray.from_float(cols[n, gi * cin_g * K:(gi + 1) * cin_g * K] * 2.0 ** -xf[1],
                                              int_bits=xf[0], frac_bits=xf[1])
                blocks.append(Wg @ Cg)
            y = np.concatenate([np.array(raw(bl, pf[1]), dtype=object).reshape(cout_g, -1) for bl in blocks])
            if b is not None:
                y = y + np.array(out["b_raw"], dtype=object).reshape(-1, 1)
            ys.append([int(v) for v in y.ravel()])
        out["y_raw"] = ys
        # the output cast, from the exact accumulator (as an APy array at the product's fraction length)
        of = parse_q(case["out_format"])
        casts = []
        for y in ys:
            acc_bits = max(int(abs(v)).bit_length() for v in y) + 2
            Y = APyFixedArray.from_float(np.array(y, dtype=np.float64) * 2.0 ** -pf[1],
                                         int_bits=acc_bits - pf[1], frac_bits=pf[1])
            assert acc_bits < 64  # apytypes' WRAP cast is wrong beyond 64 bits
            C = Y.cast(int_bits=of[0], frac_bits=of[1], quantization=getattr(QuantizationMode, QUANT[case["rounding"]]),
                       overflow=OverflowMode.SAT if case["overflow"] == "saturate" else OverflowMode.WRAP)
            casts.append(raw(C, of[1]))
        out["y_out_raw"] = casts
    else:
        af = parse_q(case["acc_format"])
        qm = getattr(QuantizationMode, QUANT[case["rounding"]])
        om = OverflowMode.SAT if case["overflow"] == "saturate" else OverflowMode.WRAP

        def cast(v):
            return v.cast(int_bits=af[0], frac_bits=af[1], quantization=qm, overflow=om)

        ys = []
        for n in range(2):
            y = []
            for co in range(cout):
                gi = co // cout_g
                for l in range(cols.shape[2]):
                    acc = cast(APyFixed.from_float(float(out["b_raw"][co]) * 2.0 ** -pf[1], int_bits=pf[0] + 2,
                                                   frac_bits=pf[1])) if b is not None else APyFixed.from_float(
                        0.0, int_bits=af[0], frac_bits=af[1])
                    for j in range(cin_g * K):
                        wv = APyFixed.from_float(float(w_raw[co].ravel()[j]) * 2.0 ** -wf[1], int_bits=wf[0], frac_bits=wf[1])
                        xv = APyFixed.from_float(float(cols[n, gi * cin_g * K + j, l]) * 2.0 ** -xf[1], int_bits=xf[0],
                                                 frac_bits=xf[1])
                        acc = cast(acc + cast(wv * xv))
                    y.append(int(round(float(acc) * 2.0 ** af[1])))
            ys.append(y)
        out["y_acc_raw"] = ys
    return out


def spectrum_case(case):
    """All singular values by dense SVD of the matrix PyTorch's layer applies (identity basis)."""
    run, layer, rng = make_layer(case)
    shape = tuple(case["input"])
    n = int(np.prod(shape))
    eye = torch.eye(n, dtype=torch.float64).reshape(n, *shape)
    cols = run(eye)
    if layer.bias is not None:
        cols = cols - layer.bias.detach().reshape(1, -1, *([1] * (len(shape) - 1)))
    a = cols.reshape(n, -1).T.numpy()
    return {"weight": flat(layer.weight.detach()), "singular_values": flat(np.linalg.svd(a, compute_uv=False))}


KINDS = {"spectrum": spectrum_case, "fixed_conv": fixed_conv_case, "conv": conv_case, "unfold": unfold_case, "true_conv": true_conv_case, "convmtx2": convmtx2_case,
         "shape_chain": shape_chain_case}


def main(root, only):
    warnings.simplefilter("ignore")
    torch.use_deterministic_algorithms(True)
    catalog = json.load(open(os.path.join(root, "tests/golden/catalog.json")))
    out_dir = os.path.join(root, "tests/golden/cases")
    os.makedirs(out_dir, exist_ok=True)
    written = 0
    for case in catalog["cases"]:
        if only and case["name"] not in only:
            continue
        doc = {"case": case, "oracle": ORACLES[case["kind"]](), "generator": "xtask/oracle/golden.py",
               "expected": KINDS[case["kind"]](case)}
        path = os.path.join(out_dir, case["name"] + ".json")
        text = json.dumps(doc, separators=(",", ":"), sort_keys=True) + "\n"
        old = open(path).read() if os.path.exists(path) else None
        if old != text:
            with open(path + ".tmp", "w") as f:
                f.write(text)
            os.replace(path + ".tmp", path)
            written += 1
    print(f"golden.py: {len(catalog['cases'])} cases, {written} file(s) rewritten")


if __name__ == "__main__":
    main(sys.argv[1], set(sys.argv[2:]))
