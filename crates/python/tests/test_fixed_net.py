"""convmat.onnx's fixed-point run against the apytypes goldens of xtask/oracle/fixed_net_golden.py."""

import json
import pathlib

import numpy as np
import pytest

import convmat
import convmat.onnx

GOLDEN = pathlib.Path(__file__).resolve().parents[2] / "onnx" / "tests" / "golden" / "fixed"


@pytest.mark.parametrize("name", ["cnn", "residual"])
def test_run_fixed_matches_apytypes(name):
    doc = json.loads((GOLDEN / f"{name}.json").read_text())
    model = convmat.onnx.load(GOLDEN / doc["model"])
    x = np.load(GOLDEN / doc["input"])
    for case in doc["cases"]:
        r = model.run(x, fixed=case["formats"])
        assert r.format == case["output_format"]
        frac = int(r.format.split(".")[1])
        assert (np.round(r.output * 2.0**frac).astype(np.int64).ravel() == case["output"]).all()
        by_node = {rec["node"]: rec for rec in r.report}
        for node, want in case["layers"].items():
            got = [c["results"] for c in by_node[node]["channels"]]
            assert got == want["results"], (node, got, want["results"])
        # the same through run_fixed, from JSON text
        assert np.array_equal(model.run_fixed(x, json.dumps(case["formats"])).output, r.output)


def test_bad_formats_raise_one_line():
    model = convmat.onnx.load(GOLDEN / "cnn.onnx")
    x = np.load(GOLDEN / "cnn_x.npy")
    with pytest.raises(convmat.ConvmatError, match="which the graph does not have"):
        model.run_fixed(x, {"input": "q2.6", "default": {"weight": "q2.6"}, "layers": {"nope": {}}})
    with pytest.raises(convmat.ConvmatError, match="the formats are not valid"):
        model.run_fixed(x, '{"default": ')
    with pytest.raises(convmat.ConvmatError, match="does not fit its type q1.1"):
        model.run_fixed(x, {"input": "q2.6", "default": {"weight": "q1.1"}})
