"""Checks every route of routes.py against torch.nn.functional.conv2d, so that timings compare routes that
compute the same matrix. usage: python xtask/oracle/peers/check_peers.py"""

import numpy as np
import torch
import torch.nn.functional as F

from routes import ROUTES

rng = np.random.default_rng(0)
# (input, C_out, kernel, stride, padding, dilation)
CASES = [((2, 6, 7), 5, (3, 3), (1, 1), (0, 0), (1, 1)),
         ((3, 10, 12), 4, (3, 2), (2, 1), (1, 2), (1, 1)),
         ((2, 9, 9), 3, (3, 3), (1, 1), (0, 0), (2, 2))]
for shape, cout, k, s, p, d in CASES:
    w = rng.standard_normal((cout, shape[0], *k)).astype(np.float32)
    x = rng.standard_normal(shape).astype(np.float32)
    expected = F.conv2d(torch.from_numpy(x)[None], torch.from_numpy(w), None, s, p, d)[0].numpy().ravel()
    for name, route in ROUTES.items():
        if name == "seed_toeplitz" and (s, p, d) != ((1, 1), (0, 0), (1, 1)):
            continue
        if name in ("seed_affine", "seed_c2s") and d != (1, 1):
            continue
        a = route(w, None, shape, s, p, d)
        if name == "seed_c2s":  # acts on the padded input and a trailing 1
            padded = np.pad(x, ((0, 0), (p[0], p[0]), (p[1], p[1])))
            y = a.to_dense().numpy() @ np.append(padded.ravel(), 1.0).astype(np.float32)
        else:
            y = (a.numpy() if torch.is_tensor(a) else a) @ x.ravel()
        err = float(np.abs(y - expected).max())
        print(f"{name:15s} input {shape} kernel {k} stride {s} padding {p} dilation {d}: max error {err:.1e}")
        assert err < 1e-4, name
print("every route agrees with torch.nn.functional.conv2d")
