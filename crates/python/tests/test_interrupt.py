"""Ctrl-C during a long spectrum: KeyboardInterrupt within a second, and the Rust worker stops too.

The binding's worker thread watches a cancel flag that the interrupt sets (the library checks it between
Lanczos steps), so an interrupted call leaves no core busy behind it.
"""

import _thread
import signal
import threading
import time

import numpy as np
import pytest

import convmat


def test_ctrl_c_stops_a_long_spectrum_and_its_worker():
    # _thread.interrupt_main does nothing while SIGINT is ignored or at its default: an earlier test
    # (a Dask cluster, a subprocess helper) may have left it so, and the spectrum would then run to
    # the end (minutes) instead of being interrupted. Python's own handler, as in an interactive session.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_a_long_spectrum()
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_a_long_spectrum():
    rng = np.random.default_rng(0)
    # the top 8 of 16 -> 16 3x3 on 64x64 at a residual of 1e-14: many block steps, each short
    layer = convmat.Conv(rng.standard_normal((16, 16, 3, 3)) / 12, padding=1)
    timer = threading.Timer(1.0, _thread.interrupt_main)
    timer.start()
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        convmat.singular_values(layer, (16, 64, 64), k=8, tol=1e-14)
    timer.join()
    assert time.monotonic() - start < 1.0 + 2.0, "KeyboardInterrupt came late"
    # a worker running on would keep the cores busy (Lanczos uses both): measure this process's CPU
    # time over the next second (the binding already waited up to a second for the worker to end)
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(1.0)
    busy = (time.process_time() - cpu) / (time.monotonic() - wall)
    assert busy < 0.3, f"the worker ran on after the interrupt ({busy:.2f} cores busy)"
