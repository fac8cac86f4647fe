"""convmat's Operator (f32 `A·x`) against torch's F.conv2d, side by side in one run, per shape.

usage: python xtask/oracle/peers/conv_speed.py CONV_SPEED_BINARY [ROUNDS]
  (build it with `cargo build --release -p convmat-matrix --example conv_speed`; the binary is
  target/release/examples/conv_speed)

Per shape and round: torch F.conv2d in this process (median of 9 after a warm-up), then the convmat
example (median of 9 per path, after a warm-up); rounds alternate the two, so both see the same load.
Printed: the median over rounds of each side's GMAC/s and convmat's best path over torch.
"""

import statistics
import subprocess
import sys
import time

import torch
import torch.nn.functional as F

# (label, N, C, H, W, C_out, kernel, stride, padding, groups)
SHAPES = [
    ("issue 24: 64->64 3x3, batch 8, 32x32", 8, 64, 32, 32, 64, 3, 1, 1, 1),
    ("resnet18 layer1: 64->64 3x3, 56x56", 1, 64, 56, 56, 64, 3, 1, 1, 1),
    ("resnet18 layer2 down: 64->128 3x3 s2, 56x56", 1, 64, 56, 56, 128, 3, 2, 1, 1),
    ("resnet18 layer4: 512->512 3x3, 7x7", 1, 512, 7, 7, 512, 3, 1, 1, 1),
    ("resnet18 stem: 3->64 7x7 s2, 224x224", 1, 3, 224, 224, 64, 7, 2, 3, 1),
    ("1x1 s1: 96->24, 56x56 (mobilenet_v2)", 1, 96, 56, 56, 24, 1, 1, 0, 1),
    ("1x1 s1: 256->64, 56x56", 1, 256, 56, 56, 64, 1, 1, 0, 1),
    ("depthwise 3x3: 144, 56x56 (mobilenet_v2)", 1, 144, 56, 56, 144, 3, 1, 1, 144),
    ("depthwise 3x3 s2: 96, 112x112", 1, 96, 112, 112, 96, 3, 2, 1, 96),
    ("depthwise 7x7: 96, 56x56 (convnext_tiny)", 1, 96, 56, 56, 96, 7, 1, 3, 96),
]


def torch_rate(n, c, h, w, cout, k, s, p, g):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, h, w, generator=gen)
    weight = torch.randn(cout, c // g, k, k, generator=gen)
    y = F.conv2d(x, weight, stride=s, padding=p, groups=g)
    times = []
    for _ in range(9):
        start = time.perf_counter()
        y = F.conv2d(x, weight, stride=s, padding=p, groups=g)
        times.append(time.perf_counter() - start)
    macs = n * cout * (c // g) * k * k * y.shape[-2] * y.shape[-1]
    return macs / statistics.median(times) / 1e9


def convmat_rates(binary, n, c, h, w, cout, k, s, p, g):
    out = subprocess.run([binary, f"{n},{c},{h},{w}", str(cout), str(k), str(s), str(p), str(g)],
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: float(line.split()[2]) for line in out.splitlines()}


def main():
    binary = sys.argv[1]
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    print(f"torch {torch.__version__} ({torch.get_num_threads()} threads), convmat {binary}, f32, "
          f"median of {rounds} alternating rounds; GMAC/s")
    for label, *shape in SHAPES:
        t_rates, c_rates = [], {}
        for _ in range(rounds):
            t_rates.append(torch_rate(*shape))
            for path, rate in convmat_rates(binary, *shape).items():
                c_rates.setdefault(path, []).append(rate)
        t = statistics.median(t_rates)
        med = {path: statistics.median(r) for path, r in c_rates.items()}
        default = med.get("direct", med.get("auto"))
        paths = ", ".join(f"{path} {rate:.1f}" for path, rate in med.items())
        print(f"{label}: torch {t:.1f}; convmat {paths}; Operator::new / torch {default / t:.2f}x")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
