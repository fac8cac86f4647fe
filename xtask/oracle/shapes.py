"""Shape-chain goldens: PyTorch's output shape and parameter count for each layer of each chain.

Writes tests/golden/shapes.json. Run through `cargo xtask golden` (needs torch).
"""
import json
import sys

import warnings

import torch
from torch import nn

CHAINS = {
    "lenet": ((1, 32, 32), ["Conv2d(1, 6, 3)", "MaxPool2d(2)", "Conv2d(6, 16, 3)", "MaxPool2d(2)", "Flatten()",
                            "Linear(16*6*6, 120)", "ReLU()", "Linear(120, 84)", "Linear(84, 10)"]),
    "lenet_classic": ((1, 32, 32), ["Conv2d(1, 6, 5)", "MaxPool2d(2, 2)", "Conv2d(6, 16, 5)", "MaxPool2d(2, 2)",
                                    "Flatten()", "Linear(16*5*5, 120)"]),
    "resnet_stem": ((3, 224, 224), ["Conv2d(3, 64, 7, stride=2, padding=3, bias=False)", "BatchNorm2d(64)",
                                    "ReLU(inplace=True)", "MaxPool2d(3, 2, 1)", "AdaptiveAvgPool2d((1, 1))",
                                    "Flatten()", "Linear(64, 1000)"]),
    "conv1d": ((2, 100), ["Conv1d(2, 8, 5, stride=2, padding=2)", "MaxPool1d(3, ceil_mode=True)",
                          "Conv1d(8, 4, 3, dilation=2, padding='same', padding_mode='reflect')",
                          "AvgPool1d(2, padding=1, ceil_mode=True)", "Conv1d(4, 4, 3, groups=2, padding=1, padding_mode='circular')",
                          "Flatten()", "Linear(4*9, 3)"]),
    "conv3d": ((1, 16, 20, 24), ["Conv3d(1, 4, 3, padding=1, padding_mode='replicate')", "MaxPool3d((1, 2, 2))",
                                 "Conv3d(4, 8, (3, 1, 3), stride=(1, 2, 2), dilation=(2, 1, 1), groups=4)",
                                 "AdaptiveMaxPool3d((None, 4, 4))", "Flatten()"]),
    "ceil_pool": ((3, 7, 7), ["MaxPool2d(2, ceil_mode=True)", "MaxPool2d(3, stride=2, padding=1, ceil_mode=True)",
                              "AvgPool2d(3, stride=2, ceil_mode=True)"]),
    "ceil_pool_edge": ((3, 6, 9), ["MaxPool2d(2, stride=3, ceil_mode=True)", "AvgPool2d((1, 2), stride=2, padding=(0, 1), ceil_mode=True)",
                                   "MaxPool2d((1, 2), stride=1, dilation=1, ceil_mode=True)"]),
    "transposed": ((16, 7, 7), ["ConvTranspose2d(16, 8, 3, stride=2, padding=1, output_padding=1)",
                                "ConvTranspose2d(8, 4, (4, 3), stride=(2, 1), dilation=2, groups=2)",
                                "ConvTranspose2d(4, 2, 2, stride=2, bias=False)"]),
    "transposed1d3d": ((4, 10), ["ConvTranspose1d(4, 2, 5, stride=3, padding=2, output_padding=2, bias=False)",
                                 "ConvTranspose1d(2, 6, 1, groups=2)"]),
    "transposed3d": ((4, 3, 4, 5), ["ConvTranspose3d(4, 2, (2, 3, 3), stride=(1, 2, 3), padding=(0, 1, 1), output_padding=(0, 1, 2))"]),
    "same_padding": ((6, 15, 15), ["Conv2d(6, 16, kernel_size=3, stride=1, padding='same', padding_mode='circular')",
                                   "Conv2d(16, 16, 4, padding='same')", "Conv2d(16, 8, 3, padding=2, padding_mode='reflect')",
                                   "Conv2d(8, 8, (5, 2), dilation=2, padding='same')", "Conv2d(8, 4, 3, padding='valid')"]),
    "flatten_dims": ((2, 3, 4, 5), ["Flatten(2)", "Flatten(1, 2)", "Linear(120, 7, bias=False)"]),
}

# Chains PyTorch refuses: the layer index (1-based) that fails.
ERRORS = {
    "linear_mismatch": ((1, 32, 32), ["Conv2d(1, 6, 5)", "MaxPool2d(2)", "Flatten()", "Linear(16*6*6, 120)"]),
    "too_small": ((3, 4, 4), ["Conv2d(3, 8, 5)"]),
    "too_small_dilated": ((3, 9, 9), ["Conv2d(3, 8, 3, dilation=6, padding=1)"]),
    "reflect_too_large": ((1, 3, 3), ["Conv2d(1, 1, 7, padding=3, padding_mode='reflect')"]),
    "circular_too_large": ((1, 3, 3), ["Conv2d(1, 1, 9, padding=4, padding_mode='circular')"]),
    "wrong_channels": ((3, 8, 8), ["Conv2d(4, 8, 3)"]),
    "pool_too_small": ((1, 3, 3), ["MaxPool2d(4)"]),
    "pool_pad_too_large": ((1, 8, 8), ["MaxPool2d(2, padding=2)"]),
    "wrong_rank": ((3, 8), ["Conv2d(3, 8, 3)"]),
    "ceil_pool_empty": ((3, 6, 9), ["MaxPool2d(2, stride=3, ceil_mode=True)", "AvgPool2d((1, 2), stride=2, padding=(0, 1), ceil_mode=True)", "MaxPool2d(2, stride=1, dilation=2, ceil_mode=True)"]),
}


def run(shape, layers):
    x = torch.zeros((1, *shape))
    outs, params = [], []
    for i, text in enumerate(layers):
        layer = eval("nn." + text, {"nn": nn})
        try:
            with torch.no_grad():
                x = layer(x)
        except Exception as e:  # noqa: BLE001 - any refusal counts
            return {"fails_at": i + 1, "torch_error": str(e).splitlines()[0][:200]}
        outs.append(list(x.shape[1:]))
        params.append(sum(p.numel() for p in layer.parameters()))
    return {"outputs": outs, "params": params}


def main(out):
    warnings.simplefilter("ignore")
    cases = []
    for name, (shape, layers) in CHAINS.items():
        r = run(shape, layers)
        assert "outputs" in r, (name, r)
        cases.append({"name": name, "input": list(shape), "layers": layers, **r})
    for name, (shape, layers) in ERRORS.items():
        r = run(shape, layers)
        assert "fails_at" in r, (name, r)
        cases.append({"name": name, "input": list(shape), "layers": layers, **r})
    doc = {"oracle": f"torch {torch.__version__.split('+')[0]}", "generator": "xtask/oracle/shapes.py", "cases": cases}
    with open(out, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
