"""Golden accumulator ranges for `convmat range`, by NumPy brute force, independent of convmat.

For each layer: the layer's matrix is built column by column from a direct convolution written here
(an explicitly padded input via np.pad: 'constant' for zeros, 'reflect', 'edge' for replicate, 'wrap'
for circular; a transposed convolution by scattering each input times the kernel), then every output's
exact extremum over the box of stored inputs is the sum over its row of the product each coefficient
prefers, and the channel's is the extremum over its rows. Small layers are also checked by enumerating
every vertex of the box. Writes tests/golden/range/range_golden.json.

Run: /work/venv/bin/python xtask/oracle/range_golden.py   (NumPy only)
"""

import itertools
import json
import pathlib

import numpy as np

OUT = pathlib.Path(__file__).resolve().parents[2] / "tests" / "golden" / "range" / "range_golden.json"
MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}


def conv(x, w, stride, pad, dil, groups, mode):
    """PyTorch Conv{1,2,3}d without bias on one sample x (C, *spatial), w (C_out, C_in/g, *k)."""
    rank = x.ndim - 1
    xp = np.pad(x, [(0, 0)] + [(p, p) for p in pad], mode=MODES[mode])
    k = w.shape[2:]
    out = [(xp.shape[1 + a] - dil[a] * (k[a] - 1) - 1) // stride[a] + 1 for a in range(rank)]
    cout, cin_g = w.shape[0], w.shape[1]
    cout_g = cout // groups
    y = np.zeros([cout] + out, dtype=np.int64)
    for co in range(cout):
        g = co // cout_g
        for o in itertools.product(*[range(n) for n in out]):
            acc = 0
            for cl in range(cin_g):
                for t in itertools.product(*[range(n) for n in k]):
                    idx = tuple(o[a] * stride[a] + t[a] * dil[a] for a in range(rank))
                    acc += int(w[(co, cl) + t]) * int(xp[(g * cin_g + cl,) + idx])
            y[(co,) + o] = acc
    return y


def conv_transpose(x, w, stride, pad, dil, groups, output_padding):
    """PyTorch ConvTranspose{1,2,3}d without bias: w (C_in, C_out/g, *k)."""
    rank = x.ndim - 1
    k = w.shape[2:]
    n = x.shape[1:]
    out = [(n[a] - 1) * stride[a] - 2 * pad[a] + dil[a] * (k[a] - 1) + output_padding[a] + 1 for a in range(rank)]
    cin, cout_g = w.shape[0], w.shape[1]
    cin_g = cin // groups
    y = np.zeros([cout_g * groups] + out, dtype=np.int64)
    for ci in range(cin):
        g = ci // cin_g
        for i in itertools.product(*[range(m) for m in n]):
            for cl in range(cout_g):
                for t in itertools.product(*[range(m) for m in k]):
                    q = [i[a] * stride[a] - pad[a] + t[a] * dil[a] for a in range(rank)]
                    if all(0 <= q[a] < out[a] for a in range(rank)):
                        y[(g * cout_g + cl,) + tuple(q)] += int(x[(ci,) + i]) * int(w[(ci, cl) + t])
    return y


def apply(case, x):
    w = np.array(case["weight"], dtype=np.int64).reshape(case["weight_shape"]) - case["weight_zero_point"]
    rank = len(case["input_shape"]) - 1
    one = lambda key, default: case.get(key, [default] * rank)
    if case.get("transposed"):
        return conv_transpose(x, w, one("stride", 1), one("padding", 0), one("dilation", 1), case.get("groups", 1),
                              one("output_padding", 0))
    return conv(x, w, one("stride", 1), one("padding", 0), one("dilation", 1), case.get("groups", 1),
                case.get("padding_mode", "zeros"))


def ranges(case):
    shape = case["input_shape"]
    n = int(np.prod(shape))
    lo, hi = case["input_min"] - case["input_zero_point"], case["input_max"] - case["input_zero_point"]
    cols = [apply(case, np.eye(n, dtype=np.int64)[j].reshape(shape)) for j in range(n)]
    a = np.stack([c.reshape(-1) for c in cols], axis=1)  # rows x cols
    out_shape = cols[0].shape
    bias = np.repeat(np.array(case.get("bias", [0] * out_shape[0]), dtype=np.int64), a.shape[0] // out_shape[0])
    row_max = np.maximum(a * lo, a * hi).sum(axis=1) + bias
    row_min = np.minimum(a * lo, a * hi).sum(axis=1) + bias
    per = a.shape[0] // out_shape[0]
    mins = [int(row_min[c * per:(c + 1) * per].min()) for c in range(out_shape[0])]
    maxs = [int(row_max[c * per:(c + 1) * per].max()) for c in range(out_shape[0])]
    if n <= 12:  # every vertex of the box, as a second opinion
        vmin, vmax = [None] * out_shape[0], [None] * out_shape[0]
        for bits in itertools.product([lo, hi], repeat=n):
            y = apply(case, np.array(bits, dtype=np.int64).reshape(shape)).reshape(out_shape[0], -1)
            y = y + np.array(case.get("bias", [0] * out_shape[0]))[:, None]
            vmin = [int(y[c].min()) if v is None else min(v, int(y[c].min())) for c, v in enumerate(vmin)]
            vmax = [int(y[c].max()) if v is None else max(v, int(y[c].max())) for c, v in enumerate(vmax)]
        assert (vmin, vmax) == (mins, maxs), (case["name"], vmin, vmax, mins, maxs)
    return mins, maxs


def weights(shape, seed, m):
    rng = np.random.default_rng(seed)
    return rng.integers(-m, m + 1, size=int(np.prod(shape))).tolist()


CASES = [
    # qonnx's border case: max 2 only at the border (qonnx says 1)
    dict(name="qonnx_border", weight_shape=[1, 1, 2], weight=[1, -1], input_shape=[1, 4], padding=[1],
         input_dtype="q8.0", input_min=1, input_max=2, input_range=[1, 2]),
    # int8 2-d, reflect padding with collisions, groups, stride, bias
    dict(name="reflect_groups_bias", weight_shape=[4, 1, 3, 3], weight=weights([4, 1, 3, 3], 1, 127),
         input_shape=[2, 5, 4], padding=[1, 1], padding_mode="reflect", groups=2, stride=[2, 1],
         bias=[1000, -2000, 0, 5], input_dtype="q8.0", input_min=-128, input_max=127),
    # uint8 with zero points, replicate, dilation
    dict(name="replicate_zero_points", weight_shape=[2, 2, 3], weight=weights([2, 2, 3], 2, 100),
         input_shape=[2, 6], padding=[2], padding_mode="replicate", dilation=[2], input_dtype="uq8.0",
         input_min=0, input_max=255, input_zero_point=128, weight_zero_point=3),
    # circular 2-d with a narrower box
    dict(name="circular_range", weight_shape=[2, 1, 2, 3], weight=weights([2, 1, 2, 3], 3, 7),
         input_shape=[1, 3, 4], padding=[1, 1], padding_mode="circular", input_dtype="q4.0",
         input_min=-3, input_max=5, input_range=[-3, 5]),
    # transposed 2-d, stride 2, output padding, groups
    dict(name="transposed_stride2", weight_shape=[2, 2, 3, 3], weight=weights([2, 2, 3, 3], 4, 15),
         input_shape=[2, 3, 3], transposed=True, stride=[2, 2], padding=[1, 1], output_padding=[1, 0], groups=2,
         bias=[7, -7, 0, 3], input_dtype="q8.0", input_min=-128, input_max=127),
    # 3-d zero padding
    dict(name="conv3d_zeros", weight_shape=[2, 1, 2, 2, 2], weight=weights([2, 1, 2, 2, 2], 5, 9),
         input_shape=[1, 3, 3, 3], padding=[1, 0, 1], input_dtype="q8.0", input_min=-128, input_max=127),
]


def main():
    out = []
    for case in CASES:
        case = dict(case)
        case.setdefault("input_zero_point", 0)
        case.setdefault("weight_zero_point", 0)
        mins, maxs = ranges(case)
        case["expected_min"], case["expected_max"] = mins, maxs
        out.append(case)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    doc = {"oracle": f"xtask/oracle/range_golden.py, NumPy {np.__version__} brute force", "cases": out}
    OUT.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {OUT} ({len(out)} cases)")


if __name__ == "__main__":
    main()
