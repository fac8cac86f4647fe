"""Issue 28's measurements: `convmat calibrate` + `convmat run --fixed` on torchvision CNNs, and the speed of
`run --fixed` beside the float `run`.

Run:  /work/venv/bin/python xtask/oracle/fixed_net_measure.py --convmat target/release/convmat
          [--models resnet18,mobilenet_v2] [--size 64] [--calib 32] [--further 1000] [--chunk 100]
          [--speed 224] [--work /tmp/convmat_fixed]

Each model (random weights, BatchNorm statistics randomised as torchvision_run.py does) is exported at
1x3xSIZExSIZE; `convmat calibrate --word-length 16` (and 8) on a batch of CALIB standard-normal inputs
proposes the formats; `convmat run --fixed` on FURTHER other inputs (in chunks) counts per layer the
products, accumulators and results that overflowed (the report's totals) and the output's SQNR against
float32. Printed: per model and word length, the accumulator overflows (the goal: 0), the layers whose
results saturated (with counts), the worst and median layer SQNR. --speed N: resnet18 at 1x3xNxN, float
`convmat run` and `convmat run --fixed` (16-bit calibrated formats) alternately, 3 times each, medians.
"""

import argparse
import json
import os
import subprocess
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torchvision_run import build  # noqa: E402


def sh(args):
    r = subprocess.run(args, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(args)}: {r.stderr.strip()}")
    return r


def export(name, size, work):
    path = os.path.join(work, f"{name}_{size}.onnx")
    if not os.path.exists(path):
        torch.manual_seed(24)
        x = torch.randn(1, 3, size, size)
        torch.onnx.export(build(name), x, path, dynamo=False, opset_version=17, input_names=["x"], output_names=["y"])
    return path


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--convmat", default="target/release/convmat")
    ap.add_argument("--models", default="resnet18,mobilenet_v2")
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--calib", type=int, default=32)
    ap.add_argument("--further", type=int, default=1000)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--words", default="16,8")
    ap.add_argument("--speed", type=int, default=0)
    ap.add_argument("--work", default="/tmp/convmat_fixed")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)
    rng = np.random.default_rng(28)
    for name in args.models.split(",") if args.models else []:
        path = export(name, args.size, args.work)
        calib = os.path.join(args.work, f"calib_{args.size}.npy")
        np.save(calib, rng.standard_normal((args.calib, 3, args.size, args.size)).astype(np.float32))
        for word in [int(w) for w in args.words.split(",")]:
            fmts = os.path.join(args.work, f"{name}_{args.size}_w{word}.json")
            t = time.time()
            sh([args.convmat, "calibrate", path, "--input", calib, "--word-length", str(word), "-o", fmts])
            t_cal = time.time() - t
            totals, saturated, sqnr, certified, layers = {}, {}, [], None, None
            t = time.time()
            done = 0
            while done < args.further:
                n = min(args.chunk, args.further - done)
                xf = os.path.join(args.work, "further.npy")
                np.save(xf, rng.standard_normal((n, 3, args.size, args.size)).astype(np.float32))
                rep = os.path.join(args.work, "report.json")
                sh([args.convmat, "run", path, "--input", xf, "--fixed", fmts, "--report", rep])
                r = json.load(open(rep))
                layers = r["layers"]
                for l in layers:
                    for k in ("products", "accumulators", "results"):
                        totals[k] = totals.get(k, 0) + l[k]
                    if l["results"]:
                        saturated[l["node"]] = saturated.get(l["node"], 0) + l["results"]
                sqnr.append(r["sqnr_db"])
                certified = sum(1 for l in layers if l.get("certified")), sum(1 for l in layers if l["kind"] == "block")
                done += n
            t_run = time.time() - t
            lay = [l["sqnr_db"] for l in layers if l["kind"] == "block" and l["sqnr_db"] is not None]
            print(f"{name} {args.size}x{args.size} word {word}: calibrate {t_cal:.1f} s on {args.calib}; "
                  f"{args.further} further inputs in {t_run:.1f} s: overflows products {totals['products']}, "
                  f"accumulators {totals['accumulators']}, results {totals['results']}; accumulators certified "
                  f"{certified[0]}/{certified[1]} blocks; output SQNR {min(sqnr):.1f}..{max(sqnr):.1f} dB; block SQNR "
                  f"min {min(lay):.1f} median {float(np.median(lay)):.1f} dB (last chunk)")
            if saturated:
                worst = sorted(saturated.items(), key=lambda kv: -kv[1])
                print(f"  results saturated in {len(saturated)} layers: "
                      + ", ".join(f"{k} {v}" for k, v in worst[:12]) + (" ..." if len(worst) > 12 else ""))
    if args.speed:
        path = export("resnet18", args.speed, args.work)
        x = os.path.join(args.work, f"x_{args.speed}.npy")
        np.save(x, rng.standard_normal((1, 3, args.speed, args.speed)).astype(np.float32))
        fmts = os.path.join(args.work, f"resnet18_{args.speed}_w16.json")
        sh([args.convmat, "calibrate", path, "--input", x, "--word-length", "16", "-o", fmts])
        times = {"float": [], "fixed": []}
        for _ in range(3):
            for kind in ("float", "fixed"):
                extra = ["--fixed", fmts] if kind == "fixed" else []
                t = time.time()
                sh([args.convmat, "run", path, "--input", x] + extra)
                times[kind].append(time.time() - t)
        f, q = float(np.median(times["float"])), float(np.median(times["fixed"]))
        print(f"resnet18 1x3x{args.speed}x{args.speed} whole process, medians of 3 alternating: float {f:.3f} s, "
              f"fixed {q:.3f} s, ratio {q / f:.2f}x (runs: float {times['float']}, fixed {times['fixed']})")


if __name__ == "__main__":
    main()
