"""`convmat lower` against writing the same bytes (issue 29's performance goal: the whole process within
1.5x of writing the lowered file's bytes).

Run:  /work/venv/bin/python xtask/oracle/lower_perf.py target/release/convmat [/tmp/lower_perf]

Models: crates/onnx/tests/golden/lower/cnn_a.onnx (the largest of the three test CNNs) and a 3x32x32 CNN
with 64 channels exported here from torch (seeded): Conv(3->64, 3, stride 2, padding 1) + ReLU +
Conv(64->16, 3, stride 2, padding 1) + ReLU + Flatten + Linear(1024, 10), 268 MB lowered. Each round runs,
side by side, `convmat lower MODEL -o OUT.onnx` and `dd` writing as many bytes from /dev/zero to a file
in the same folder (both whole processes, timed from Python), alternating which goes first; it prints
medians and the ratio of medians. Timings on a shared machine swing: compare the ratio, not the seconds.
"""

import os
import statistics
import subprocess
import sys
import time

ROUNDS = 7


def cnn64(path):
    import torch
    from torch import nn

    torch.manual_seed(64)
    net = nn.Sequential(
        nn.Conv2d(3, 64, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(64, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Flatten(), nn.Linear(16 * 8 * 8, 10),
    ).eval()
    torch.onnx.export(net, torch.zeros(1, 3, 32, 32), path, dynamo=False, opset_version=13,
                      input_names=["input"], output_names=["logits"], dynamic_axes={"input": {0: "batch"}})


def timed(cmd):
    t = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t


def main():
    convmat = sys.argv[1]
    work = sys.argv[2] if len(sys.argv) > 2 else "/tmp/lower_perf"
    os.makedirs(work, exist_ok=True)
    big = os.path.join(work, "cnn64_3x32x32.onnx")
    if not os.path.exists(big):
        cnn64(big)
    here = os.path.dirname(os.path.abspath(__file__))
    models = [os.path.join(here, "..", "..", "crates/onnx/tests/golden/lower/cnn_a.onnx"), big]
    for model in models:
        out, raw = os.path.join(work, "out.onnx"), os.path.join(work, "raw.bin")
        subprocess.run([convmat, "lower", model, "-o", out], check=True, stdout=subprocess.DEVNULL)
        size = os.path.getsize(out)
        lower_cmd = [convmat, "lower", model, "-o", out]
        dd_cmd = ["dd", "if=/dev/zero", f"of={raw}", "bs=4M", f"count={size}", "iflag=count_bytes", "status=none"]
        lows, dds = [], []
        for r in range(ROUNDS):
            pair = [(lows, lower_cmd), (dds, dd_cmd)]
            for acc, cmd in pair if r % 2 == 0 else pair[::-1]:
                acc.append(timed(cmd))
        lo, dd = statistics.median(lows), statistics.median(dds)
        print(f"{os.path.basename(model)}: {size} bytes; convmat lower median {lo:.3f} s, dd median {dd:.3f} s, "
              f"ratio {lo / dd:.2f} (rounds: lower {[round(t, 3) for t in lows]}, dd {[round(t, 3) for t in dds]})")
        os.remove(raw)


if __name__ == "__main__":
    main()
