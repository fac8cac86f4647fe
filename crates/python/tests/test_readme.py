"""README examples are tests: every ```python block of README.md runs standalone.

Each block runs in a fresh interpreter (this one's), in a scratch directory holding links to the
repository's ``examples/``, ``benches/``, ``crates/`` and ``tests/`` folders, with this interpreter's
``bin`` first on PATH (so ``convmat``, the package's console script, is the one just installed). A
block must hold its imports and make or name its inputs (files shipped under ``examples/``).

Markers, an HTML comment on the line right before the opening fence (the convention of
``tests/readme.rs``, which runs the console blocks; README's Development section says the same):

- ``<!-- requires: torch onnx -->``: optional packages the block imports; the block is skipped where
  one is missing (``pip install "./crates/python[examples]"`` installs them all);
- ``<!-- readme: skip WHY -->``: not run.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
README = ROOT / "README.md"

# import names of the optional packages a marker may name (pip names where they differ)
IMPORT_NAME = {"onnxruntime": "onnxruntime", "dask": "dask.distributed", "safetensors": "safetensors"}


def blocks() -> list:
    """(line, requires, skip, code) of every python block, in README order."""
    lines = README.read_text(encoding="utf-8").splitlines()
    out = []
    i = 0
    while i < len(lines):
        m = re.match(r"^(\s*)```python\s*$", lines[i])
        if not m:
            i += 1
            continue
        marker = lines[i - 1].strip() if i > 0 else ""
        requires = []
        r = re.match(r"<!--\s*requires:\s*(.*?)\s*-->", marker)
        if r:
            requires = r.group(1).split()
        skip = marker.startswith("<!-- readme: skip")
        start = i + 1
        body = []
        i += 1
        while not lines[i].strip().startswith("```"):
            body.append(lines[i])
            i += 1
        out.append((start, requires, skip, textwrap.dedent("\n".join(body))))
        i += 1
    return out


def missing(requires: list) -> list:
    found = []
    for name in requires:
        module = IMPORT_NAME.get(name, name)
        try:
            ok = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            ok = False
        if not ok:
            found.append(name)
    return found


BLOCKS = blocks()


def test_the_runner_found_the_blocks():
    assert len(BLOCKS) >= 10, f"only {len(BLOCKS)} python blocks found"


@pytest.mark.parametrize("line,requires,skip,code", BLOCKS, ids=[f"README.md:{b[0]}" for b in BLOCKS])
def test_python_block_runs_standalone(line, requires, skip, code, tmp_path):
    if skip:
        pytest.skip("marked <!-- readme: skip -->")
    absent = missing(requires)
    if absent:
        pytest.skip(f"needs {', '.join(absent)} (pip install \"./crates/python[examples]\")")
    for name in ("examples", "benches", "crates", "tests"):
        (tmp_path / name).symlink_to(ROOT / name)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    r = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900
    )
    assert r.returncode == 0, f"README.md:{line} failed:\n{code}\n--- stderr\n{r.stderr[-3000:]}"
