"""Ctrl-C during a long spectrum: KeyboardInterrupt within a second, and the Rust worker stops too.

The binding's worker thread watches a cancel flag that the interrupt sets (the library checks it between
Lanczos steps), so an interrupted call leaves no core busy behind it.
"""

import _thread
import os
import threading
import time

import numpy as np
import pytest

import convmat


def _spectrum_threads():
    """Names of this process's threads that are convmat spectrum workers (Linux: /proc), or None."""
    try:
        tasks = os.listdir("/proc/self/task")
    except FileNotFoundError:
        return None
    names = []
    for t in tasks:
        try:
            with open(f"/proc/self/task/{t}/comm") as f:
                names.append(f.read().strip())
        except FileNotFoundError:
            pass  # the thread ended meanwhile
    return [n for n in names if n.startswith("convmat-spec")]


def test_ctrl_c_stops_a_long_spectrum_and_its_worker():
    rng = np.random.default_rng(0)
    # the top 300 of 64 -> 64 3x3 on 56x56 at a residual of 1e-14 takes minutes
    layer = convmat.Conv(rng.standard_normal((64, 64, 3, 3)) / 24, padding=1)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        convmat.singular_values(layer, (64, 56, 56), k=300, tol=1e-14)
    timer.join()
    assert time.monotonic() - start < 1.0 + 2.0, "KeyboardInterrupt came late"
    if _spectrum_threads() is None:
        pytest.skip("no /proc to list threads")
    deadline = time.monotonic() + 3.0
    while _spectrum_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _spectrum_threads() == [], "the worker ran on after the interrupt"
